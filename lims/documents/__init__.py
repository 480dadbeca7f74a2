"""What lims prints on paper and labels: vial labels and the batch record.

A document is drawn from views (and label content built by the printing
service) and imports no service: what it shows is decided once, where the
views are built, and the document only lays it out.
"""
