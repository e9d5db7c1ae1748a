"""Rights requests: their statuses, filing (the one place a request row and its card are
created), the catalogue of what each type asks, and the lifecycle staff drive from the card."""
