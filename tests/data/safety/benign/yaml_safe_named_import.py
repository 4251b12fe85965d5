import yaml
from salt.utils.yamlloader import SaltYamlSafeLoader

yaml.load(s, Loader=SaltYamlSafeLoader)
