"""Rooms: where a call happens. Verticals create them (a consultation, a class); the server only
knows who may enter and with which grants."""
