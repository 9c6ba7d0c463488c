"""Sources: captures (pcap, pcapng, gzip, standard input, live via dumpcap) read
as raw packet batches (`decode.batch.RawBatch`), and what each says about
itself (`base.CaptureInfo`). Nothing here decodes a packet.
"""
