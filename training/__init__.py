"""The pretraining / evaluation pipeline (thin scripts over hindi_models)."""
