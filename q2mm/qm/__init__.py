"""q2mm.qm"""
