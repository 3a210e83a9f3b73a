"""Pictures of a prediction: `plots` (matplotlib figures shared by `valgusml predict --plot` and the evaluation
report) and `overlay` (the skeleton, each knee's FPPA and the calls drawn on the video's frames, OpenCV).

Neither is imported here: matplotlib and OpenCV load only when a picture is asked for.
"""
