"""Registry names that scripts rely on (DESIGN §4), importable without torch."""

BUILTIN_PRIOR = "dit"
BUILTIN_CLASSIFIERS = ("vit", "vgg", "cornet", "mlp", "lrm")
BUILTIN_JUDGE = "judge"
# The independent observers (engine/observers.py): kind "observer", never guide, never filter.
OBSERVERS = ("obs-cnn", "obs-resnet")
PRIMARY_OBSERVER = "obs-cnn"
