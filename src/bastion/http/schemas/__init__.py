"""Request and response models: requests forbid unknown fields, responses are allow-lists."""
