import sys

from _paths import REPO

# Let `import stylejax` work when pytest runs without the package installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
