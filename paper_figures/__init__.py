"""The paper figures: one module per figure (``fig1_...`` to ``fig9_...``)."""
