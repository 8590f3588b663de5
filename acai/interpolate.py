"""The former name of `acai.pegasus`, kept so that `acai.interpolate.scorecard` still works."""

from acai.pegasus import *  # noqa: F403
from acai.pegasus import __all__  # noqa: F401
