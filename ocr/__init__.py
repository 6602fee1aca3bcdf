"""Pure image and model code: arrays in, arrays or dataclasses out."""
