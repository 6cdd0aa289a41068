"""q2mm.tracking"""
