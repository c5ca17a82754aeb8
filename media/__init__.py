"""Everything that touches RTP, and nothing about clinics or classes.

media/ imports nothing of server/, clinics/, classrooms/ or web/ (a test enforces it): the server
drives it through :class:`media.sfu.Sfu` and receives signalling through :class:`media.sfu.SignalSink`.
"""
