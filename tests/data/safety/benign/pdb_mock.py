import pdb
from unittest import mock


def test_y():
    with mock.patch.object(pdb, "set_trace"):
        pass
