"""Configuration users edit: the policy, the source catalog, retention rules, the
sub-processor register and the pipeline's settings; all validated on load.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "catalog": ('BasisFromColumn', 'Catalog', 'OBJECT_LAST_MODIFIED', 'Source', 'load_catalog', 'plain_identifier', 'children_of', 'dependency_order'),
    "policy": ('Policy', 'load_policy'),
    "register": ('MechanismTable', 'check_register', 'load_mechanisms'),
    "retention": ('compute_deadline',),
    "settings": ('HASH_SECRET_ENV', 'PROJECT_ROOT', 'Settings', 'hasher_from_secret'),
})
