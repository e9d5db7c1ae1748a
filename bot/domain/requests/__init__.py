"""Rights requests: the catalogue of what each type asks (`catalogue`), filing (`filing`, the one
place a request row and its card are created), the lifecycle staff drive from the card and the
user's follow-ups (`desk`), and what the user is told at each step (`notices`). Their statuses
are stored strings: `storage.enums.RequestStatus`."""
