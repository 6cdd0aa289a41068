"""q2mm.systems"""
