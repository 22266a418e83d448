"""Feedback (phản ánh, kiến nghị): citizens' reports and proposals, and the staff's answers."""
