import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver
from yaml.cyaml import CParser


class C(SafeConstructor):
    pass


class L(CParser, C, Resolver):
    pass


yaml.load_all(s, Loader=L)
