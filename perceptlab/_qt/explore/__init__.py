"""The Explore panel: sampler settings, the generation controller and the live preview grid."""
