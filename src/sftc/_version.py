"""sftc's version, in a module of its own: the code fingerprints read it without importing the
package's face."""

__version__ = "0.1.0"
