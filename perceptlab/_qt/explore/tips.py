"""Tooltips of the Explore settings: the paper's term for each setting and what turning it up or down
does (the user guide, resources/help/guide.md, says the same at more length)."""

from __future__ import annotations


def sampler_tips(form) -> dict:
    """widget -> tooltip for the settings of a ``SamplerForm``."""
    return {
        form.mode: "guidance term. uncertainty: cross-entropy of one classifier's softmax to 50/50 on (a, b), "
                   "images that classifier cannot decide. controversial: classifier 1 is pushed to a, "
                   "classifier 2 to b, images two models disagree on",
        form.classifier: "the guiding classifier (uncertainty), or classifier 1, pushed towards class a "
                         "(controversial). Type to filter the list",
        form.classifier2: "controversial mode: classifier 2, pushed towards class b. Type to filter the list",
        form.preset: "paper: 50 steps, R = 5, γ = 0.1 (ICML 2025). interactive: 20 steps dense near the end, "
                     "R = 2: faster, and more images pass the filter. draft: a quick look",
        form.gamma: "guidance scale γ (paper 0.1): how far each step moves towards the boundary. Higher "
                    "reaches it in fewer steps but makes images less digit-like; 0 = plain prior samples",
        form.steps: "inference steps (paper 50): more steps are slower and finer; the step plot's axis "
                    "follows this value",
        form.resample: "resampling rounds R per step (universal guidance; paper 5): each round re-noises "
                       "x(t-1) back to x(t) and applies the guidance again. More rounds put more images on the "
                       "boundary; the time grows with R",
        form.full_grad: "checked (paper): the guidance gradient flows through the denoiser, slower but "
                        "stronger; unchecked: through the x0 prediction only",
        form.judge_weight: "weight of the digit-judge (surrogate) penalty 10·mean(max((1-s)², 0.5)), s the "
                           "judge's digit-likeness (paper 1): keeps images digit-like; 0 turns it off, "
                           "higher trades boundary for legibility",
        form.condition: "condition the diffusion prior on a class (classifier-free), halfway between the pair "
                        "(the mean of the two class embeddings), on class a or b (the fast preset: a in "
                        "uncertainty, b in controversial mode), on either by each image's seed, or not "
                        "(paper: unconditional)",
        form.per_pair: "how many images to make for each target pair",
        form.batch_size: "images sampled together: larger batches are faster per image and use more memory",
        form.seed: "random seed of the first batch (random: a new one each run); the same seed and "
                   "settings give the same images",
        form.alpha: "pixel-constraint strength α (paper 50), used only with a reference image: higher keeps "
                    "the sample closer to the reference (L2), lower lets guidance move it further",
        form.regenerate: "sample the rejected images again (new seeds) until each passes the filter or the "
                         "rounds are spent (the reference implementation gives up after 10)",
        form.max_rounds: "the most sampling rounds per asked image when rejects are sampled again",
    }
