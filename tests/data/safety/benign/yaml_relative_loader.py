import yaml
from .loader import ConfigLoader

yaml.load_all(s, Loader=ConfigLoader)
