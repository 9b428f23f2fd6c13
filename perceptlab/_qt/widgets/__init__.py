"""Small reusable widgets and models: images, pair matrix, pandas table model, plot export, stimulus browser."""
