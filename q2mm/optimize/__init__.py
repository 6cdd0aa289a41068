"""q2mm.optimize"""
