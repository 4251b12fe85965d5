import yaml
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.module_utils.common.yaml import SafeLoader


def parse(v, ansible=False):
    if ansible:
        loader = AnsibleLoader
    else:
        loader = SafeLoader
    return yaml.load(v, Loader=loader)
