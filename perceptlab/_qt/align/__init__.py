"""The Align panel: GroupNet / IndivNet fine-tuning on human choices, its results, the fine-tuned
models, and manipulation between two participants (watched live in Explore)."""
