"""Model definitions that torchvision lacks, installed as ``pktchar.zoo_models``.

Each module exposes ``MODELS = {name: {"factory": callable, "default_res": int,
"description": str}}``; pktchar's registry picks every entry up by name.
"""
