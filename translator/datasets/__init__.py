"""TFDS dataset builders for the corpora this package ships (built offline, no network)."""
