import yaml
from myproj import loaders

yaml.load(s, Loader=loaders.StrictLoader)
