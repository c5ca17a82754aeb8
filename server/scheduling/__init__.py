"""Scheduling: bookable resources, availability, slots, bookings (no double booking, enforced by
the database), shared by clinics (appointments) and classrooms (sessions)."""
