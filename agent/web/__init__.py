"""The daemon's face on loopback HTTP: the page (static/), the JSON API over the query ops, a live stream."""
