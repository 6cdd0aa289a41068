"""q2mm.reference"""
