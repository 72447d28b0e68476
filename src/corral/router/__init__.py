"""``corral serve --replicas``: one address in front of several corral servers, routing each
request to the replica that has its model loaded and its conversation's prefix cached."""
