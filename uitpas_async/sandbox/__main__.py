"""``python -m uitpas_async.sandbox``: the UiTPAS XML API's sandbox, served until killed."""

from __future__ import annotations

from uitpas_async.xml_api.sandbox.__main__ import main

if __name__ == "__main__":
    main()
