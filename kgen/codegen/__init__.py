"""Source generation: the scalar printers and the Jinja2 renderer."""
