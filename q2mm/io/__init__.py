"""q2mm.io"""
