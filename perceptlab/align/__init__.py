"""Alignment and manipulation: group and individual models from human choices (BAM, ICML 2025).

- :mod:`perceptlab.align.split` — train / validation / test split *by stimulus* (never leaks a
  stimulus across parts); torch-free.
- :mod:`perceptlab.align.datasets` — trials matched to their images (:class:`AlignData`).
- :mod:`perceptlab.align.layers` — where a zoo model is cut into a frozen trunk and a trained top
  (``all`` / ``head`` / ``readout`` / ``calibration``).
- :mod:`perceptlab.align.features` — trunk outputs computed once per image and shared by every model
  with the same frozen trunk.
- :mod:`perceptlab.align.finetune` — GroupNet (base + MNIST + trials, 1:1) and IndivNet (GroupNet +
  own trials + all trials + MNIST, 2:1:1) as progress generators; :class:`FinetuneRecipe`.
- :mod:`perceptlab.align.recipe` — :class:`FinetuneRecipe` and :class:`FinetuneResult` (re-exported
  by ``finetune``).
- :mod:`perceptlab.align.sources` — training sources, their targets and the per-batch schedule.
- :mod:`perceptlab.align.store` — fine-tuned models in the user model folder (save, list, rename,
  delete); they appear in the registry.
- :mod:`perceptlab.align.pipeline` — one run (group / individual / both -> save -> evaluate ->
  ``metrics.json``), what ``perceptlab align`` and the app drive.
- :mod:`perceptlab.align.evaluate` — Base / Group / Indiv accuracies, model–human entropy Spearman,
  gain by stimulus entropy.
- :mod:`perceptlab.align.manipulate` — controversial stimuli between two participants' IndivNets and
  their scoring against group-model stimuli for the same pairs.
- :mod:`perceptlab.align.experiment` — the whole pipeline on simulated observers.

Every long piece of work is a generator that yields small progress records and returns its result;
closing it cancels at the next yield and leaves nothing half-written.
"""
