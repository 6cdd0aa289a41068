"""q2mm.mm3"""
