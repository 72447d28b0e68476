"""API keys: parsing ``CORRAL_API_KEYS`` and checking presented keys in constant time."""

from corral.auth.keys import KeyConfigError, KeyRing, Scope, hash_key, load_keys

__all__ = ["KeyConfigError", "KeyRing", "Scope", "hash_key", "load_keys"]
