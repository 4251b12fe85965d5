import yaml
from ansible.parsing.yaml.loader import AnsibleLoader

yaml.load(s, Loader=AnsibleLoader)
