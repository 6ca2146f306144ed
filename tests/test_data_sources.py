"""A user's own Dataset (an ImageFolder of PNGs with their transforms) through both data paths:
in memory and streamed by a DataLoader give the same results for every method and metric."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

import sftc
from sftc.data import ImageData
from sftc.data.source import DatasetSource
from sftc.engine import Recipe, run

datasets = pytest.importorskip("torchvision.datasets")
T = pytest.importorskip("torchvision.transforms")

CLASSES = ("cat", "dog", "eel")
PLAIN = T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5)])
RANDOM = T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(0.5, 0.5)])


def make_pngs(root, per_class=(20, 5, 5), side=10, seed=0):
    """train/val/test folders of small PNGs, one sub-folder per class (colour tells the class)."""
    rng = np.random.default_rng(seed)
    for part, n in zip(("train", "val", "test"), per_class):
        for c, name in enumerate(CLASSES):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
                pixels[..., c] = pixels[..., c] // 4
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    return make_pngs(tmp_path_factory.mktemp("pngs"))


def folders(root, train_transform=PLAIN):
    return (datasets.ImageFolder(root / "train", train_transform),
            datasets.ImageFolder(root / "val", PLAIN), datasets.ImageFolder(root / "test", PLAIN))


def split_of(root, forget="random:0.2", **options):
    train, val, test = folders(root)
    options.setdefault("workers", 0)
    return sftc.Split.from_dataset(train, forget, val=val, test=test, **options)


@pytest.fixture(scope="module")
def both(pngs):
    memory = split_of(pngs, deterministic=True, in_memory=True)
    stream = split_of(pngs, deterministic=True, in_memory=False)
    assert isinstance(memory.data, ImageData) and isinstance(stream.data, DatasetSource)
    return memory, stream


def same_state(a, b):
    for key, value in a.state_dict().items():
        other = b.state_dict()[key]
        assert torch.allclose(value.float(), other.float(), atol=1e-5, rtol=1e-5), key


@pytest.mark.parametrize("method", sftc.list_methods())
def test_every_method_gives_the_same_model_on_both_paths(method, both):
    memory, stream = both
    assert torch.equal(memory.forget, stream.forget) and memory.sizes() == stream.sizes()
    hparams = {"k": 1} if "k" in sftc.methods.method_class(method).hparams else {}
    results = []
    for split in (memory, stream):
        model = sftc.create_model("small-cnn", in_channels=3, num_classes=3, seed=0)
        results.append(sftc.unlearn(model, split, method, epochs=2, batch_size=16, device="cpu",
                                    progress=False, model_name="small-cnn", accel="off",
                                    track=("retain", "forget", "test"), **hparams))
    same_state(results[0].model, results[1].model)
    for a, b in zip(results[0].history.rows, results[1].history.rows):
        assert a.keys() == b.keys()
        for key in ("loss", "acc_retain", "acc_forget", "acc_test"):
            if key in a:
                assert a[key] == pytest.approx(b[key], abs=1e-5), key


def test_the_metrics_are_the_same_on_both_paths(both, pngs):
    memory, stream = both
    original = sftc.train(memory, "small-cnn", epochs=4, batch_size=16, device="cpu",
                          progress=False, accel="off").model
    unlearned = sftc.unlearn(original, memory, "neggrad", epochs=1, lr=1e-3, device="cpu",
                             progress=False, accel="off").model
    oracle = sftc.create_model("small-cnn", in_channels=3, num_classes=3, seed=2)
    found = [sftc.evaluate(original, unlearned, split, oracle, device="cpu",
                           mia_iterations=20, mia_folds=2, mia_attacker="hist-gradient-boosting",
                           unlearn_seconds=1.0, retrain_seconds=10.0) for split in both]
    assert found[0].keys() == found[1].keys()
    for key, value in found[0].items():
        if isinstance(value, float):
            assert value == pytest.approx(found[1][key], abs=1e-6), key
    for role in ("original", "retrained"):
        assert found[0]["reference"][role] == pytest.approx(found[1]["reference"][role])
    assert found[0]["js"] > 1e-4 and found[0]["reference"]["original"]["acc_test"] > 0.5
    assert memory.content_sha256() != stream.content_sha256()     # pixels vs ids: both stable
    assert stream.content_sha256() == split_of(pngs, deterministic=True,
                                               in_memory=False).content_sha256()


@pytest.mark.slow
def test_workers_read_the_same_batches(pngs, both):
    _, stream = both
    two = split_of(pngs, deterministic=True, in_memory=False, workers=1)
    plan = [stream.train[:7], stream.forget, stream.test[3:9]]
    for (x0, y0), (x1, y1) in zip(stream.data.batches(plan, "cpu"), two.data.batches(plan, "cpu")):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    state = torch.get_rng_state()
    list(two.data.batches(plan, "cpu", train=True))
    assert torch.equal(state, torch.get_rng_state())        # torch's global generator untouched
    models = [sftc.unlearn(sftc.create_model("small-cnn", in_channels=3, num_classes=3, seed=0),
                           split, "sftc", epochs=1, batch_size=16, device="cpu",
                           progress=False, accel="off").model for split in (stream, two)]
    same_state(*models)                                     # a whole run through a worker


def test_random_transforms_are_treated_as_augmentation(pngs):
    train, val, test = folders(pngs, RANDOM)
    eval_view = datasets.ImageFolder(pngs / "train", PLAIN)
    random_split = sftc.Split.from_dataset(train, "random:0.2", val=val, test=test,
                                           train_eval=eval_view, workers=0)
    assert isinstance(random_split.data, DatasetSource)      # never cached in memory
    fixed_split = split_of(pngs, deterministic=True, in_memory=False)
    for split, cached in ((random_split, False), (fixed_split, True)):
        method = sftc.create_method("sftc")
        model = sftc.create_model("small-cnn", in_channels=3, num_classes=3, seed=0)
        run(method, model, split, Recipe(epochs=1, batch_size=16, device="cpu"), progress=False)
        assert method.teacher.cached is cached
    x_eval, _ = random_split.data.batch(random_split.train[:4], "cpu")
    x_plain, _ = fixed_split.data.batch(fixed_split.train[:4], "cpu")
    assert torch.equal(x_eval, x_plain)                       # evaluation reads train_eval
    with pytest.raises(sftc.SftcError, match="brings its own transforms"):
        sftc.unlearn(sftc.create_model("small-cnn", in_channels=3, num_classes=3), random_split,
                     "ft", epochs=1, augment=True, device="cpu", progress=False)


def test_the_forget_set_is_named_by_image_paths(pngs, tmp_path):
    by_position = split_of(pngs, forget=[0, 21, 45], deterministic=True, in_memory=False)
    names = ["cat/000.png", "dog/001.png", "eel/005.png"]
    by_name = split_of(pngs, forget=names, deterministic=True, in_memory=False)
    assert torch.equal(by_name.forget, by_position.forget) and by_name.forget_spec == "ids:3"
    listed = tmp_path / "forget.txt"
    listed.write_text("# to delete\n" + "\n".join(["./cat/000.png", "dog\\001.png",
                                                    "eel/005.png"]) + "\n")
    by_file = split_of(pngs, forget=f"file:{listed}", deterministic=True, in_memory=False)
    assert torch.equal(by_file.forget, by_position.forget)
    assert [by_name.data.ids[i] for i in by_name.forget_positions.tolist()] == names
    with pytest.raises(sftc.SftcError, match="'cat/999.png' is not an image in the training"):
        split_of(pngs, forget=["cat/999.png"])
    with pytest.raises(sftc.SftcError, match="'./cat/000.png' is repeated"):
        split_of(pngs, forget=["cat/000.png", "./cat/000.png"])
    tensors = torch.utils.data.TensorDataset(torch.zeros(6, 1, 4, 4), torch.arange(6) % 2)
    with pytest.raises(sftc.SftcError, match="has no ids; pass ids="):
        sftc.Split.from_dataset(tensors, ["a"], test=tensors)
    named = sftc.Split.from_dataset(tensors, ["s1"], test=tensors, ids=[f"s{i}" for i in range(6)],
                                    workers=0)
    assert named.forget.tolist() == [1]


def test_memory_is_chosen_when_deterministic_data_fits(pngs, monkeypatch):
    assert isinstance(split_of(pngs, deterministic=True).data, ImageData)
    assert isinstance(split_of(pngs).data, DatasetSource)                  # not declared
    monkeypatch.setenv("SFTC_MEMORY_BUDGET", "1000")                       # 1 kB
    assert isinstance(split_of(pngs, deterministic=True).data, DatasetSource)
    with pytest.raises(sftc.SftcError, match="declare deterministic=True"):
        split_of(pngs, in_memory=True)


def test_a_changed_file_changes_the_streamed_digest(tmp_path):
    root = make_pngs(tmp_path / "p", per_class=(4, 2, 2), side=6)
    before = split_of(root, forget=[0], in_memory=False).content_sha256()
    assert split_of(root, forget=[0], in_memory=False).content_sha256() == before
    image = root / "train" / "cat" / "001.png"
    Image.fromarray(np.zeros((6, 6, 3), dtype=np.uint8)).save(image)
    os.utime(image, ns=(1, 1))
    assert split_of(root, forget=[0], in_memory=False).content_sha256() != before


@pytest.mark.parametrize("dataset, message", [
    (datasets.ImageFolder, "yields x as Image, not a tensor; end its transform with"),
    (lambda root, transform: [(torch.zeros(1, 2, 2), 0)] * 3, None),
])
def test_datasets_that_cannot_work_are_one_line(dataset, message, pngs):
    if message is None:                       # a list is map-style: it works
        split = sftc.Split.from_dataset(dataset(None, None), [0], test=dataset(None, None),
                                        workers=0, labels=[0, 1, 0], num_classes=2)
        assert split.sizes()["train"] == 3
        return
    with pytest.raises(sftc.SftcError, match=message):
        sftc.Split.from_dataset(dataset(pngs / "train", None), [0],
                                test=dataset(pngs / "test", None), workers=0)


def test_a_dataset_where_a_split_belongs_says_how_to_make_one(pngs):
    train = datasets.ImageFolder(pngs / "train", PLAIN)
    model = sftc.create_model("small-cnn", in_channels=3, num_classes=3)
    with pytest.raises(sftc.SftcError, match=r"x_train is ImageFolder, not a tensor; give "
                                             r"Split.from_dataset\(dataset, forget"):
        sftc.Split.from_tensors(train, train.targets, "random:0.1")
    for given, how in ((torch.utils.data.DataLoader(train), r"from_dataset\(loader.dataset"),
                       (train, r"from_dataset\(dataset"), (3, r"from_tensors\(x, y")):
        with pytest.raises(sftc.SftcError, match=f"expected a sftc.Split .*got "
                                                 f"{type(given).__name__}; make one with .*{how}"):
            sftc.unlearn(model, given, "ft")
    with pytest.raises(sftc.SftcError, match="expected the trained model as a torch.nn.Module"):
        sftc.unlearn("model.pt", split_of(pngs), "ft")


def test_the_prepared_inference_pass_reads_the_stream(both):
    from sftc.engine import Accel, predict_logits

    memory, stream = both
    model = sftc.create_model("small-cnn", in_channels=3, num_classes=3, seed=0).eval()
    index = torch.cat([memory.train, memory.test])
    plain = predict_logits(model, memory.data, index, torch.device("cpu"))
    for split in both:
        fast = predict_logits(model, split.data, index, torch.device("cpu"), batch_size=8,
                              accel=Accel(), record={})
        assert torch.allclose(fast, plain, atol=1e-4)


def test_both_data_sources_provide_the_whole_data_interface(tiny_split):
    """Every member of sftc.data.protocol.Source (what the engine, metrics, caches and records
    read) on the in-memory data and on a streamed user dataset."""
    from sftc.data.protocol import Source
    from sftc.data.source import DatasetSource

    images = tiny_split.data
    streamed = DatasetSource(torch.utils.data.TensorDataset(images.images.float() / 255,
                                                            images.labels),
                             images.labels, images.num_classes, name="tensors")
    members = [name for name in Source.__dict__ if not name.startswith("_")] + \
        list(Source.__annotations__)
    for source in (images, streamed):
        assert isinstance(source, Source)
        for name in members:
            assert hasattr(source, name), (type(source).__name__, name)
