"""The customization tasks, one module each (see ``customize.ORDER`` for their order)."""
