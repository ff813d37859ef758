"""Document sources the assistant keeps in step with: folders on a WebDAV file store
(openDesk/Nextcloud). ``webdav`` is the connection, ``sync`` brings a folder into the
index, ``access`` is where a synced folder meets the readers of its collection."""
