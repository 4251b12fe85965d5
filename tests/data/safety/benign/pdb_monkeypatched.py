import pdb


def test_x(monkeypatch, fake):
    monkeypatch.setattr(pdb, "set_trace", fake)
