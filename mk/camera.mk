# The sample camera that `make run` puts camtls in front of, and its self-test.
# djpeg decodes the camera's JPEG frames with a real decoder.
APT_PACKAGES += libjpeg-turbo-progs
TEST_TARGETS += test-camera

.PHONY: test-camera
test-camera: deps
	python3 tests/sample-camera/test_camera.py
