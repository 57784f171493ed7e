"""Reading a trained model: explanations of predictions, and simplification to a short formula."""
