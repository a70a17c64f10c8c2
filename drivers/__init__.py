"""Hardware edges: camera, GPIO and illuminator backends, each real beside a recording fake."""
