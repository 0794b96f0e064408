import pytest
import torch

from core.metrics import count_parameters
from core.models import FFEModule, create_model, list_models


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_registry_lists_the_three_models():
    assert {"eff_resnet18", "shufflenet_v2", "resnet18"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg99")


def test_ffe_output_shape_and_stride():
    block = FFEModule(16, 32, stride=2, subsets=4)
    assert block(torch.randn(2, 16, 12, 12)).shape == (2, 32, 6, 6)


def _subset_gradients(branch: int, subset: int) -> list[bool]:
    """Which of the four input channel groups influence output Y_subset of one chain (0 left, 1 right)."""
    block = FFEModule(32, 32, subsets=4).eval()
    block.entry = torch.nn.Identity()  # so input channel group i is subset X_i
    x = torch.randn(1, 32, 6, 6, requires_grad=True)
    block.branches(x)[branch][subset].sum().backward()
    return [bool(group.abs().sum() > 0) for group in torch.chunk(x.grad, 4, dim=1)]


def test_left_chain_sees_preceding_subsets_only():
    assert _subset_gradients(0, 0) == [True, False, False, False]
    assert _subset_gradients(0, 2) == [True, True, True, False]


def test_right_chain_sees_succeeding_subsets_only():
    assert _subset_gradients(1, 3) == [False, False, False, True]
    assert _subset_gradients(1, 1) == [False, True, True, True]


def test_ffe_rejects_channels_not_divisible_by_subsets():
    with pytest.raises(ValueError):
        FFEModule(8, 30, subsets=4)


def test_parameter_counts_match_the_paper():
    teacher = count_parameters(create_model("eff_resnet18", num_classes=7))
    student = count_parameters(create_model("shufflenet_v2", num_classes=7))
    assert abs(teacher - 11.8e6) / 11.8e6 < 0.15
    assert 1.2e6 < student < 1.3e6
    assert 11.0e6 < count_parameters(create_model("resnet18", num_classes=7)) < 11.4e6


@pytest.mark.parametrize("name", ["eff_resnet18", "shufflenet_v2", "resnet18"])
@pytest.mark.parametrize("size", [48, 64, 224])
def test_models_accept_any_input_size(name, size):
    model = create_model(name, num_classes=8).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, size, size)).shape == (2, 8)


def test_lowres_stem_keeps_more_spatial_detail():
    from core.metrics import count_flops

    imagenet = count_flops(create_model("shufflenet_v2", stem="imagenet"), (1, 1, 64, 64))
    lowres = count_flops(create_model("shufflenet_v2", stem="lowres"), (1, 1, 64, 64))
    assert lowres > 3 * imagenet
    with pytest.raises(ValueError):
        create_model("shufflenet_v2", stem="tiny")


def test_paper_rgb_input_is_still_available():
    model = create_model("eff_resnet18", num_classes=7, in_chans=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 7)


def test_copied_torchvision_classes_build_what_torchvision_builds():
    """core.models._torchvision stands in for torchvision (whose import costs ~1 s): same seeded weights, same
    state-dict names, same outputs."""
    from torchvision.models import shufflenet_v2_x1_0
    from torchvision.models.resnet import BasicBlock as TorchvisionBlock

    from core.models._torchvision import BasicBlock
    from core.models._torchvision import shufflenet_v2_x1_0 as copied_shufflenet

    pairs = [
        (lambda: shufflenet_v2_x1_0(weights=None, num_classes=8), lambda: copied_shufflenet(num_classes=8), 3),
        (lambda: TorchvisionBlock(64, 64), lambda: BasicBlock(64, 64), 64),
        (
            lambda: TorchvisionBlock(64, 128, 2, torch.nn.Conv2d(64, 128, 1, 2, bias=False)),
            lambda: BasicBlock(64, 128, 2, torch.nn.Conv2d(64, 128, 1, 2, bias=False)),
            64,
        ),
    ]
    for theirs, ours, channels in pairs:
        torch.manual_seed(0)
        reference = theirs().eval()
        torch.manual_seed(0)
        copy = ours().eval()
        assert list(copy.state_dict()) == list(reference.state_dict())
        for name, tensor in reference.state_dict().items():
            assert torch.equal(copy.state_dict()[name], tensor), name
        x = torch.randn(2, channels, 64, 64)
        with torch.no_grad():
            assert torch.equal(copy(x), reference(x))


def test_building_the_student_and_teacher_does_not_import_torchvision():
    import subprocess
    import sys

    code = (
        "import sys; from core.models import create_model; "
        "create_model('shufflenet_v2', 8); create_model('eff_resnet18', 8); create_model('eff_face_resnet', 8); "
        "print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
