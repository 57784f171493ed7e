"""A model in other forms: exported code and documents, the model card, the HTML report, plots, the
text learning curve and the trace.
"""
