"""q2mm.objective"""
