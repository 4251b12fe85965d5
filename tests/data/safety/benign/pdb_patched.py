import pdb


def setup(fake):
    pdb.set_trace = fake
    pdb.Pdb = fake
